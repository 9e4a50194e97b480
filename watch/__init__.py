"""Site watch (issue 17): the bot reads the registered websites itself — availability,
freshness of columns, broken links, wrong and sensitive terms, hidden links, tampering —
and feeds what it finds into the existing playbooks."""
