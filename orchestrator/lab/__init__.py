"""The local lab fleet of real sshd hosts."""
