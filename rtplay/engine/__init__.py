"""The engine: the session, its fault controller, crowds, message log, control client, the spawned server and the browser driver."""
