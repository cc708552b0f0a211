"""The pure judging core: a session and its checks reconciled, judged into progress, a wait or a
decision, and the actions the rules file plans for it. Imports no Redis, RQ, HTTP or SQL (a
contract), and nothing else of the workers."""
