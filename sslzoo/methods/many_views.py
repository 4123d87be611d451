"""``ManyViewMethod``: the base of methods that take q ≥ 2 views of each image (MMCR, EMP-SSL).

Views 1 and 2 go through the usual step (CRR, the probe and collapse_std see them); views
3…q are the multi-crop path's "local crops" at the global size, so their BatchNorm statistics
are their own batch's. ``stacked_views`` gives the projections as (n, q, d).
"""
from keras import ops

from sslzoo.data.augment import ManyViews
from sslzoo.errors import ConfigError
from sslzoo.methods.base import SSLMethod
from sslzoo.utils.config import is_int


class ManyViewMethod(SSLMethod):
    views_hparam = "views"  # the hparam that holds q

    @property
    def local_crops(self):
        q = self.hparams[self.views_hparam]
        if not is_int(q, 2):
            raise ConfigError(f"{self.method} hparam {self.views_hparam} must be an integer "
                              f">= 2, got {q!r}")
        return int(q) - 2

    @property
    def two_view_hparams(self):
        return f"{self.views_hparam}=2"

    @property
    def local_size(self):
        return self.image_size

    def view_layer(self):
        return ManyViews(self.recipe, self.image_size, self.hparams[self.views_hparam])

    def stacked_views(self, out, n):
        """The q views' projections, (n, q, d)."""
        z = out.proj
        views = [z[:n], z[n:]]
        if self.local_crops:
            if out.local_proj is None:
                raise ValueError(f"{self.method} with {self.views_hparam} > 2 needs "
                                 "out.local_proj (the model's forward_local of views 3...q)")
            views += [out.local_proj[i * n:(i + 1) * n] for i in range(self.local_crops)]
        return ops.stack(views, axis=1)
