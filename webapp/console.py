"""What the long-running `flask` commands (demo-data, import) share on the terminal."""

import click


class ProgressBar:
    """A click progress bar fed absolute counts (how far the work is), as progress
    callbacks report them; opened again for each stage that has one."""

    def __init__(self):
        self.bar = None
        self.shown = 0

    def open(self, length, label, **options):
        """A new bar (closing the current one) of `length` steps; `options` go to click.progressbar."""
        self.close()
        self.bar = click.progressbar(length=max(length, 1), label=label, **options)
        self.bar.__enter__()
        self.shown = 0

    def show(self, done):
        """Move the bar to `done` (never back); nothing when no bar is open."""
        if self.bar is not None and done > self.shown:
            self.bar.update(done - self.shown)
            self.shown = done

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
