from tests.rollback import sessions

__all__ = ["sessions"]
