"""Read models projected from committed events, and blocking-query waiting."""
