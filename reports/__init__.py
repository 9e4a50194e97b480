"""Reports that compose several domains (the composing layer above roster, incidents,
replies): the duty log and the handover summary. The domains below never import this
package; handlers, the CLI and the briefing do.
"""
