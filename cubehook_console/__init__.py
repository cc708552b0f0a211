"""The compliance team's console (`cubehook console`): the review queue, a session's story,
people's decisions over automatic ones, dead letters and the webhook's health, in the browser.

Server-rendered (Starlette and Jinja2), no script, nothing from a CDN; a process of its own, bound
to 127.0.0.1 unless told otherwise, refusing to start without a key to sign its sessions with.
"""
