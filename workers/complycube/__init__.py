"""The ComplyCube adapter: the one client of its API, the fleet-wide rate limiter it waits on, and
answers read with a bound. Imports nothing else of the workers but the outage gauges it feeds."""
