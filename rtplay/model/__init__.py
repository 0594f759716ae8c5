"""Pure client-side figures and grammars: accounting, channels, recovery, crowds, retry and
fault specs, the EventSource parser, engine events. No I/O, no clock (pass ``now``)."""
