"""The encoder resource the project's runs use: its model loads in a thread from setup on.

Loading the model takes ~3 s on 2 cores (importing torch and transformers, compiling the OpenVINO model), and a
run's in-process executor sets every resource up before its first step: a day run's delivery and delta (~8 s)
waited for a model they do not use. Here setup starts the load and returns; the first use of `encoder` waits for
it and raises what it raised (an unknown device, a missing model). When the model loads never changes what it
encodes, so this module is not part of any code version (`EncoderResource`'s is).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import dagster as dg
from pydantic import PrivateAttr

from tv5_assets.embeddings.encoding import TextEncoder
from tv5_assets.embeddings.resources import EncoderResource


class PreloadingEncoderResource(EncoderResource):
    """`EncoderResource` whose own `setup_for_execution` (the load) runs in a thread started by this one."""

    _loading: Future[None] | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder-load")
        self._loading = loader.submit(super().setup_for_execution, context)
        loader.shutdown(wait=False)  # the one load runs on; no other work is taken

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        loading, self._loading = self._loading, None
        if loading is not None:
            loading.exception()  # waits for a load still running; a failed one left nothing to free
        super().teardown_after_execution(context)

    @property
    def encoder(self) -> TextEncoder:
        if self._loading is not None:
            self._loading.result()  # waits for the load, raises what it raised
        return super().encoder  # not set up: the base class says so
