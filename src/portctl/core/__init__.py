"""The supervision core: specs and records, the supervisor and its decisions, stopping, freeing,
locks, ports, health, logs and events. It imports the platform and the base (whose ``messages``
words everything it says), never the face."""
