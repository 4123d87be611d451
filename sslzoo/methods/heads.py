"""Small reusable heads: MLP projectors and predictors."""
import keras


def mlp(dims, name, hidden_bn=True, last_bn=False):
    """Dense → BN → ReLU blocks, then a final Dense (optionally BN, no affine).

    ``dims`` lists the output width of every Dense; e.g. (2048, 128) is SimCLR's two-layer
    projector. BN uses PyTorch's defaults (momentum 0.9, eps 1e-5).
    """
    layers = []
    for i, d in enumerate(dims):
        last = i == len(dims) - 1
        layers.append(keras.layers.Dense(d, use_bias=not (hidden_bn and not last) and not
                                         (last and last_bn), name=f"{name}_dense{i + 1}"))
        if not last:
            if hidden_bn:
                layers.append(keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                                              name=f"{name}_bn{i + 1}"))
            layers.append(keras.layers.ReLU(name=f"{name}_relu{i + 1}"))
        elif last_bn:
            layers.append(keras.layers.BatchNormalization(
                momentum=0.9, epsilon=1e-5, center=False, scale=False, name=f"{name}_bn{i + 1}"))
    return keras.Sequential(layers, name=name)
