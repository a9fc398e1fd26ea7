"""Task drivers: how a task's process (real or scripted) is started, signalled, killed and exec'd."""
