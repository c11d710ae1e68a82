"""One module per Lambda function: parse the event, make one service call, map the result."""
