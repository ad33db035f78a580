"""Names and defaults the health modules share; the CLI parser and the alert agent import
this module, so it imports nothing."""

STATE_DIR = "/var/lib/hakit/health"
OUTBOX_PATH = f"{STATE_DIR}/outbox.db"
SUBSCRIPTIONS_PATH = f"{STATE_DIR}/subscriptions.db"
API_ADDRESS = "127.0.0.1"
API_PORT = 8797
API_BASE = f"http://{API_ADDRESS}:{API_PORT}"
VIM_CONNECTION_ID = "hakit"
LEADER_VARIABLE = "HAKIT_HEALTH_LEADER"
EVACUATE_WORKERS = 8  # evacuation requests in flight at once
EVACUATE_GUARD_PERCENT = 50  # more of the nodes lost at once (two at least) holds them
EVACUATE_GUARD_HOLD = 60  # seconds the guard holds on while fewer, not none, are lost
EVACUATE_DEADLINE = 120  # seconds from a request to its EVACUATION_OVERDUE alarm

ALARM_NOTIFICATION = "AlarmNotification"
ALARM_CLEARED_NOTIFICATION = "AlarmClearedNotification"
NOTIFICATION_TYPES = (ALARM_NOTIFICATION, ALARM_CLEARED_NOTIFICATION)
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE", "CLEARED")
