# The quick start, as the README shows it; tests/dev/test_quickstart.py runs these lines in order.
# In one terminal: Redis, a local ComplyCube, the web process, a worker, the console, a demo.
make run
# In another, from the same folder: read the settings make run wrote (only when told to)
export CUBEHOOK_ENV_FILE=var/dev.env
.venv/bin/cubehook simulate play --preset rejected   # a session, its webhooks, its decision
.venv/bin/cubehook history SESSION_ID                # the id play printed: all on record about it
.venv/bin/cubehook status
.venv/bin/cubehook dlq list
.venv/bin/cubehook send-event --session SESSION_ID   # your own signed event about it: 202
# Ctrl-C in the first terminal stops it all; the audit trail stays:
.venv/bin/cubehook history SESSION_ID
# The whole test suite, on a private Redis it starts and stops:
make test
