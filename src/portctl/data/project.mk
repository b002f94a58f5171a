# portctl targets for the services of @FILE@
# (written by `portctl makefile@ARGS@`; run it again after adding a service).
#
#   include portctl.mk        # e.g. made with: portctl makefile@ARGS@ > portctl.mk
#
#   make @P@start              start every service, detached, in start order
#   make @P@stop               stop every service
#   make @P@restart            restart every service
#   make @P@status             list the services (state, pid, port, uptime, ...)
#   make @P@start-NAME         start one service, detached; returns once it serves
#   make @P@stop-NAME / @P@restart-NAME / @P@status-NAME / @P@logs-NAME
#   make @P@force-clean-NAME   stop NAME's strays: portctl clean --sweep NAME --force
#   make @P@force-clean        the same for every service with sweep patterns
#
# Services: @NAMES@.
# A service that already runs is no error for the start targets (portctl's exit code 6 counts
# as success). Otherwise a failing portctl fails make with portctl's exit code (make prints
# `Error 4`); status-NAME fails with 3 when NAME is not running.
# Including this file leaves your default goal as it was. Your Makefile's own targets of the
# same names would clash (make keeps one recipe of the two and warns): take a prefix then,
# `portctl makefile --prefix pc-` gives pc-start, pc-stop-NAME, ...
# The recipes need a POSIX shell; on Windows use the .bat wrappers (`portctl wrappers`).

PORTCTL ?= portctl
# sh: exit with the code of the command before, 6 (already running) counting as success
PORTCTL_RUNNING_OK = code=$$?; [ $$code -ne 6 ] || code=0; exit $$code

portctl_saved_goal := $(.DEFAULT_GOAL)

.PHONY: @P@start @P@stop @P@restart @P@status@FORCE_CLEAN_ALL@ @PHONY@

@P@start:
	@for name in @START_ORDER@; do \
	  echo "$(PORTCTL) start -d $$name"; \
	  $(PORTCTL) start -d $$name; code=$$?; [ $$code -eq 0 ] || [ $$code -eq 6 ] || exit $$code; \
	done

@P@stop:
	$(PORTCTL) stop @STOP_ORDER@

@P@restart:
	$(PORTCTL) restart @START_ORDER@

@P@status:
	$(PORTCTL) status

@STARTS@: @P@start-%:
	$(PORTCTL) start -d $*; $(PORTCTL_RUNNING_OK)

@STOPS@: @P@stop-%:
	$(PORTCTL) stop $*

@RESTARTS@: @P@restart-%:
	$(PORTCTL) restart $*

@STATUSES@: @P@status-%:
	$(PORTCTL) status $*

@LOGS@: @P@logs-%:
	$(PORTCTL) logs $*
@FORCE_CLEAN_RULES@
.DEFAULT_GOAL := $(portctl_saved_goal)
