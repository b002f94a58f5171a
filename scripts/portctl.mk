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
# Including it leaves your default goal as it was. When your Makefile has targets of the same
# names (clean, status, ...), set a prefix before the include: PORTCTL_PREFIX = pc- gives
# pc-start, pc-clean, ... For a project file's services, use `portctl makefile` instead.

PORT ?= 8000
HOST ?= 127.0.0.1
NAME ?= backend
PORTCTL ?= portctl
RUN_DIR ?= .
APP_CMD ?=
PORTCTL_START_OPTS ?=
PORTCTL_PREFIX ?=

PORTCTL_RUN = $(PORTCTL) --run-dir "$(RUN_DIR)"

portctl_saved_goal := $(.DEFAULT_GOAL)
portctl_p := $(PORTCTL_PREFIX)

.PHONY: $(portctl_p)start $(portctl_p)stop $(portctl_p)restart $(portctl_p)status $(portctl_p)logs $(portctl_p)clean $(portctl_p)force-clean $(portctl_p)show-processes

$(portctl_p)start:
	$(PORTCTL_RUN) start -d --port $(PORT) --host $(HOST) --name $(NAME) $(PORTCTL_START_OPTS) $(if $(strip $(APP_CMD)),-- $(APP_CMD))

$(portctl_p)stop:
	$(PORTCTL_RUN) stop --port $(PORT)

$(portctl_p)restart:
	$(PORTCTL_RUN) restart --port $(PORT)

$(portctl_p)status:
	$(PORTCTL_RUN) status --port $(PORT)

$(portctl_p)logs:
	$(PORTCTL_RUN) logs --port $(PORT) -n 50

$(portctl_p)clean:
	$(PORTCTL_RUN) clean

# Stop our instance, then whatever else holds the port (policy applies), then stale files.
$(portctl_p)force-clean:
	$(PORTCTL_RUN) stop --port $(PORT)
	$(PORTCTL_RUN) free $(PORT) --host $(HOST)
	$(PORTCTL_RUN) clean

# Who holds the port; not an error when nothing does.
$(portctl_p)show-processes:
	-@$(PORTCTL_RUN) who $(PORT)

.DEFAULT_GOAL := $(portctl_saved_goal)
