"""daytona.getPreviewUrl: a browser URL for a port served inside a sandbox."""

from __future__ import annotations

from typing import Annotated, ClassVar

from daytonaflow.component import DEFAULT_CHANNEL
from daytonaflow.components._component import DaytonaComponent
from daytonaflow.components._config import ComponentConfig, SandboxRef, Spec
from daytonaflow.components._fields import When
from daytonaflow.components._payloads import PreviewUrlPayload
from daytonaflow.components._step import Outcome, Step

DEFAULT_PORT = 3000
DEFAULT_EXPIRY_SECONDS = 60
MAX_EXPIRY_SECONDS = 86400

DOCS = """
Generates a Daytona preview URL for a port of a sandbox.

## Use cases

- **Open sandbox web apps**: reach a web app running in a sandbox from a browser
- **Share previews**: generate signed URLs that open without custom headers
- **Automation**: produce preview links for downstream steps and notifications

## Configuration

- **Sandbox**: the sandbox to generate the preview URL for
- **Port**: the sandbox port to preview (default 3000)
- **Signed URL**: whether to generate a signed URL (default true)
- **Expires In Seconds**: lifetime of a signed URL (default 60, at most 86400)

## URL forms

- Standard (`signed: false`): `https://{port}-{sandboxId}.{daytonaProxyDomain}`; requests need the
  header `x-daytona-preview-token` with the returned token (unless the sandbox is public)
- Signed (`signed: true`): `https://{port}-{token}.{daytonaProxyDomain}`; the authentication is
  embedded in the URL, no custom header needed

## Output

Emits `daytona.preview.response` on the default channel:

- `sandbox`: the sandbox ID used in the request
- `port`: the target port
- `signed`: whether the URL is signed
- `url`: the preview URL
- `token`: the preview token (embedded for signed URLs, the header value for standard URLs)
- `expiresInSeconds`: the expiry of a signed URL

## Notes

- The port must serve HTTP inside the sandbox; start a server with executeCommand's background
  option and its Wait For Port setting first.
- Signed URLs open directly in browsers; standard URLs need the header for private sandboxes.
"""


class GetPreviewUrlConfig(ComponentConfig):
    sandbox: SandboxRef
    port: Annotated[int, Spec("Port", "Sandbox port to preview.", minimum=1, maximum=65535)] = DEFAULT_PORT
    signed: Annotated[
        bool, Spec("Signed URL", "Embed the authentication in the URL, so it opens without custom headers.")
    ] = True
    expires_in_seconds: Annotated[
        int,
        Spec(
            "Expires In Seconds",
            "Lifetime of the signed URL.",
            minimum=1,
            maximum=MAX_EXPIRY_SECONDS,
            visible_when=(When("signed", (True,)),),
        ),
    ] = DEFAULT_EXPIRY_SECONDS


class GetPreviewUrl(DaytonaComponent[GetPreviewUrlConfig]):
    name: ClassVar[str] = "daytona.getPreviewUrl"
    label: ClassVar[str] = "Get Preview URL"
    description: ClassVar[str] = "Generate a preview URL (signed or standard) for a sandbox port."
    icon: ClassVar[str] = "globe"
    channels = (DEFAULT_CHANNEL,)
    payload_type = PreviewUrlPayload
    config_model = GetPreviewUrlConfig
    docs = DOCS

    async def run(self, step: Step, config: GetPreviewUrlConfig) -> Outcome:
        if config.signed:
            link = await step.client.get_signed_preview_url(
                config.sandbox, config.port, config.expires_in_seconds
            )
        else:
            link = await step.client.get_preview_url(config.sandbox, config.port)
        payload = PreviewUrlPayload(
            sandbox=config.sandbox,
            port=config.port,
            signed=config.signed,
            url=link.url,
            token=link.token,
            expires_in_seconds=config.expires_in_seconds if config.signed else None,
        )
        return Outcome(DEFAULT_CHANNEL.name, payload)
