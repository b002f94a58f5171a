"""The supervision core: specs and records, the supervisor and its decisions, stopping, freeing,
locks, ports, health, logs and events. It imports the platform and the base, and of the face
only ``face.output``'s message text, until that moves to a messages module (issue 10 item 3)."""
