"""The sandbox: how a worker process is started, contained, talked to and cleaned up after."""
