"""functions/gate_reconcile.py on its EventBridge schedule."""


def test_the_scheduled_run_reports_what_it_withdrew(local_cloud, lambda_context, events):
    from functions import gate_reconcile

    result = gate_reconcile.handler(events("eventbridge_scheduled.json"), lambda_context)

    assert result == {"communities": 0, "withdrawn": 0}
