"""Services: every write the studio makes, as ``<thing>_<action>(*, ...)`` functions.

Views, commands and Celery tasks call these; nothing else writes studio models.
"""
