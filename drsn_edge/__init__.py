"""drsn-edge: Deep Residual Shrinkage Networks for machine condition monitoring.

The host side (models, data, training, evaluation and the ``drsn-edge`` CLI). Importing this
package does not import torch; the modules that need it (models, training) import it themselves.
"""

__version__ = "0.1.0"
