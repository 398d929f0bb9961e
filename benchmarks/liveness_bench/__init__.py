"""The liveness evaluation (``benchmarks/liveness_eval.py`` is its command line), one job per module:

* :mod:`.media`   - decoding the shared clips and photos, and the product's per-frame analysis (face
  engine with its quality gate, dense landmarks, face hash);
* :mod:`.render`  - the synthetic presentations: a print or a screen held in front of a pinhole camera,
  and the one pose builder of every attack kind;
* :mod:`.data`    - the cache of analysed sequences (real clips, rendered attacks; nothing in the repo);
* :mod:`.truth`   - the ground truth: the moves each clip performs, measured on its dense landmarks;
* :mod:`.sets`    - the presentations: bona fide and attack sets;
* :mod:`.protocol`- a capture filmed as the page films it and judged by the product's own decision
  (:func:`idp.liveness.decide_capture`, the function the capture API calls for every frame);
* :mod:`.report`  - the Markdown tables written into docs/liveness.md.
"""
