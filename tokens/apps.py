from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Sessions and tokens"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers checks and receivers)
