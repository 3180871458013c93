"""The error a job raises for a user's mistake (a wrong argument or folder), not a bug."""


class JobError(Exception):
    """Bad input to a job: the CLI prints it as one line and exits with status 2."""
