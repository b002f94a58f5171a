# portctl targets for your Makefile.
#
#   include scripts/portctl.mk
#   APP_CMD = uvicorn app.main:app --host {host} --port {port}
#
#   make start PORT=8001        # detached; returns once the server accepts connections
#   make status / logs / stop / restart / clean / force-clean / show-processes
#
# Every variable can be set in the including Makefile or on the command line. A failing
# portctl fails the make run (make prints `Error <portctl's exit code>`), except in show-processes.

PORT ?= 8000
HOST ?= 127.0.0.1
NAME ?= backend
PORTCTL ?= portctl
RUN_DIR ?= .
APP_CMD ?=
PORTCTL_START_OPTS ?=

PORTCTL_RUN = $(PORTCTL) --run-dir "$(RUN_DIR)"

.PHONY: start stop restart status logs clean force-clean show-processes

start:
	$(PORTCTL_RUN) start -d --port $(PORT) --host $(HOST) --name $(NAME) $(PORTCTL_START_OPTS) $(if $(strip $(APP_CMD)),-- $(APP_CMD))

stop:
	$(PORTCTL_RUN) stop --port $(PORT)

restart:
	$(PORTCTL_RUN) restart --port $(PORT)

status:
	$(PORTCTL_RUN) status --port $(PORT)

logs:
	$(PORTCTL_RUN) logs --port $(PORT) -n 50

clean:
	$(PORTCTL_RUN) clean

# Stop our instance, then whatever else holds the port (policy applies), then stale files.
force-clean:
	$(PORTCTL_RUN) stop --port $(PORT)
	$(PORTCTL_RUN) free $(PORT) --host $(HOST)
	$(PORTCTL_RUN) clean

# Who holds the port; not an error when nothing does.
show-processes:
	-@$(PORTCTL_RUN) who $(PORT)
