"""Fakes of external packages that cannot be installed on CI machines (TensorRT, CUDA bindings).

Each fake is named as such, records the calls made to it and raises
:class:`~tests.fakes.fake_cuda.FakeContractError` where the real package would misbehave or
reject the call, so tests prove the code under test uses the real API the documented way.
"""
