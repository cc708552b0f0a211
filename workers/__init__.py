"""Everything after the queue: the jobs RQ workers run."""
