"""Gate checks (API Gateway, /devices/gates/{gateId}/check...) and enrollment encoding (direct invoke).

The face models load while the container initialises, so the first resident at the door does not
wait for them; the gallery of each community loads on its first check and stays warm.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum
from starlette.applications import Starlette

from sunflower.api.devices.gates import routes
from sunflower.gate.encoder import ACTION, face_pipeline, handle_encode_request

logger = Logger()
asgi = Mangum(Starlette(routes=routes()), lifespan="off", api_gateway_base_path="/")
face_pipeline()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    if event.get("action") == ACTION:
        # From the API function (lambda:InvokeFunction), never from the internet.
        return handle_encode_request(event)
    return asgi(event, context)
