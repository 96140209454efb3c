"""The one exception the recipe helpers raise for problems the user must fix."""


class RecipeError(RuntimeError):
    """A recipe cannot run as configured; the message says what to change."""
