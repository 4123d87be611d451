"""SimSiam (Chen & He 2020, arXiv 2011.10566)."""
import keras

from sslzoo.losses import simsiam_loss
from sslzoo.methods.base import SSLMethod
from sslzoo.methods.heads import mlp
from sslzoo.optim import ParamGroup, Rate


@keras.saving.register_keras_serializable(package="sslzoo")
class SimSiam(SSLMethod):
    """A siamese network without negatives or momentum encoder; a predictor h and the
    stop-gradient on the other branch's projection prevent collapse:

        L = ½ D(p1, sg(z2)) + ½ D(p2, sg(z1)),   D(p, z) = −cos(p, z),   p_v = h(z_v).

    Paper defaults: projector 3 × Linear(2048) with BN on every layer (output BN without affine),
    predictor bottleneck 2048 → 512 → 2048 (BN, ReLU; none on the output), SGD (momentum 0.9)
    with lr 0.05 × batch/256 and weight decay 1e-4, SimCLR's augmentation. The predictor's
    learning rate decays with the others (the paper's baseline, Table 1: 67.7%);
    ``fix_pred_lr=1`` holds it at the peak rate throughout instead (Table 1's "lr not
    decayed", 68.1%, and the official code's ``--fix-pred-lr``; not available under UMM).
    """

    method = "simsiam"
    recipe = "simclr"
    defaults = {"proj_hidden_dim": 2048, "proj_dim": 2048, "pred_hidden_dim": 512,
                "fix_pred_lr": False}
    optim_defaults = {"optimizer": "sgd", "learning_rate": 0.05, "weight_decay": 1e-4,
                      "scale": "linear"}

    def build_heads(self):
        h = self.hparams
        self.fix_pred_lr = self.bool_hparam("fix_pred_lr")
        hidden = h["proj_hidden_dim"] or self.feature_dim
        self.projector = mlp((hidden, hidden, h["proj_dim"]), "projector", last_bn=True,
                             in_dim=self.feature_dim)
        self.predictor = mlp((h["pred_hidden_dim"], h["proj_dim"]), "predictor",
                             in_dim=h["proj_dim"])

    @property
    def fixed_lr_variables(self):
        return list(self.predictor.trainable_variables) if self.fix_pred_lr else []

    def param_groups(self):
        """``main``, and with ``fix_pred_lr`` the predictor as ``fixed_lr`` at the peak rate."""
        fixed = {id(v) for v in self.fixed_lr_variables}
        if not fixed:
            return super().param_groups()
        rest = [v for v in self.ssl_trainable_variables if id(v) not in fixed]
        return [ParamGroup("main", rest), ParamGroup("fixed_lr", self.fixed_lr_variables,
                                                     Rate.peak())]

    @property
    def fixed_lr_optimizer(self):
        """The predictor's optimizer with ``fix_pred_lr``, else None."""
        return self.optimizers["fixed_lr"] if "fixed_lr" in self.optimizers else None

    def ssl_loss(self, out, n):
        z = out.proj
        p = self.predictor(z, training=True)
        return 0.5 * (simsiam_loss(p[:n], z[n:]) + simsiam_loss(p[n:], z[:n]))
