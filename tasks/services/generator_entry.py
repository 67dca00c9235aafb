"""The registered generator's entry point: MLflow runs this file to build the model.

Logging the model as code rather than as a pickled object means loading it from the
registry unpickles nothing; the code it runs is the installed fairdistill's.
"""

import mlflow

from fairdistill.tasks.services.generator_model import FairSyntheticGenerator

mlflow.models.set_model(FairSyntheticGenerator())
