"""SimCLR (Chen et al. 2020, arXiv 2002.05709): a two-layer MLP projector and NT-Xent."""
import keras

from sslzoo.losses import simclr_loss
from sslzoo.methods.base import SSLMethod
from sslzoo.utils.replicas import all_gather, row_offset


@keras.saving.register_keras_serializable(package="sslzoo")
class SimCLR(SSLMethod):
    """Backbone → MLP projector (Dense–BN–ReLU–Dense) → NT-Xent over the 2N views.

    Paper defaults: temperature 0.5 (the CIFAR setting), projector d → d → 128 where d is the
    backbone's feature width (2048 for the paper's ResNet-50; ``proj_hidden_dim=None``);
    ``proj_layers=1`` is the paper's "linear" projection head of its Figure 8 ablation. LARS with
    learning rate 0.3 × batch/256 (ImageNet: 0.3; CIFAR: 1.0 × batch/256) and weight decay 1e-6.

    Under a distribution strategy the negatives are the global batch's: each replica gathers
    the others' projections and scores its own rows against all 2N_global views.
    """

    method = "simclr"
    recipe = "simclr"
    defaults = {"temperature": 0.5, "proj_hidden_dim": None, "proj_dim": 128, "proj_layers": 2}
    optim_defaults = {"optimizer": "lars", "learning_rate": 1.0, "weight_decay": 1e-6, "scale": "linear"}

    def ssl_loss(self, out, n):
        z = out.proj
        z1, z2 = z[:n], z[n:]
        return simclr_loss(z1, z2, self.hparams["temperature"], all_gather(z1), all_gather(z2),
                           row_offset(n))
