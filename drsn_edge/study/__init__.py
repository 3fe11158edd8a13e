"""Reproducible studies: the evidence behind the claims in ``docs/study.md``.

* :mod:`.noise` — DRSN-CW/CS against ConvNet, ResNet and WDCNN on CWRU under Gaussian, Laplacian
  and pink noise, for the paper's protocol (noisy train and test) and for clean training with
  noisy tests, with the FP16-ONNX accuracy of DRSN-CW at every point;
* :mod:`.thresholds` — what the learnt soft thresholds do as the noise rises;
* :mod:`.mnist` — the 2-D reference experiment (DRSN against the same network without
  shrinkage on MNIST with additive uniform noise).

Every study is one ``drsn-edge study ...`` command that resumes where it stopped and writes
CSV + Markdown tables and PNG figures; the loop over runs is
:func:`drsn_edge.training.sweep.run_sweep`, extended through its ``after`` hook.
"""
