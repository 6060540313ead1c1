from django.contrib.auth import get_user_model

PASSWORD = "correct horse battery staple"


def user_create(*, username: str = "alice", password: str = PASSWORD, **fields):
    fields.setdefault("email", f"{username}@example.com")
    return get_user_model().objects.create_user(username=username, password=password, **fields)
