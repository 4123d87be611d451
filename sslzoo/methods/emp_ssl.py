"""EMP-SSL (Tong, Chen, Ma & LeCun 2023, arXiv 2304.03977): many patches, a total coding rate."""
import keras

from sslzoo.losses import emp_ssl_loss
from sslzoo.methods.many_views import ManyViewMethod
from sslzoo.utils.replicas import all_gather


@keras.saving.register_keras_serializable(package="sslzoo")
class EMPSSL(ManyViewMethod):
    """q fixed-size patches of each image; with Z_j (n, d) patch j's L2-normalised projections
    and z̄_i image i's mean patch,

        L = −1/q Σ_j R(Z_j) − λ · 1/q Σ_j 1/n Σ_i cos(z_ij, z̄_i),
        R(Z) = ½ logdet(I + d/(n ε²) ZᵀZ)   (the total coding rate, ``sslzoo.losses.coding_rate``).

    Patches: ``patches`` = q views of the ``emp_ssl`` recipe (a quarter of the image each,
    resized to the image size). Patches 3…q run through the multi-crop path (their BatchNorm
    statistics are their own batch's); CRR, the probe and collapse_std see patches 1 and 2.

    Defaults (the official CIFAR code): projector d → 4096 → 4096 → 1024 (BN, ReLU; the
    official code's first hidden layer belongs to its "pre_feature" head, whose output it
    probes; here the probe reads the backbone), ε² = 0.2, λ = 200, 20 patches (the paper's
    smaller setting; its code's default is 100), LARS (SGD with momentum 0.9, weight decay 1e-4)
    at lr 0.3 for its batch of 100, not scaled. Under a distribution strategy the patches are
    gathered and every replica computes the global batch's loss.
    """

    method = "emp_ssl"
    recipe = "emp_ssl"
    views_hparam = "patches"
    proj_layers = 3
    defaults = {"proj_hidden_dim": 4096, "proj_dim": 1024, "patches": 20, "eps": 0.2,
                "inv_weight": 200.0}
    optim_defaults = {"optimizer": "lars", "learning_rate": 0.3, "weight_decay": 1e-4,
                      "scale": "none"}

    def ssl_loss(self, out, n):
        h = self.hparams
        return emp_ssl_loss(self.stacked_views(out, n), h["eps"], h["inv_weight"],
                            all_gather=all_gather)
