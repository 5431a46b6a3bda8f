"""What each :class:`~explorer.config.Config` field means, for people: its group, a short
title and a one-line help (the dashboard's Train form shows them; ``tests/test_train_form.py``
checks that every field has them, so a new field cannot land undocumented).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The form's groups, in the order it shows them.
GROUPS = ("data", "model", "loss", "optimisation", "run", "evaluation and analysis")

#: The fields a newcomer changes, shown first (the preset and the run's name come before them).
ESSENTIALS = ("dataset", "loss", "mu", "epochs", "batch_size", "lr", "device")


@dataclass(frozen=True)
class FieldDoc:
    """One field's place in the form and its meaning."""

    group: str  # one of GROUPS
    title: str  # a few words, e.g. "Training images"
    help: str  # one line: what it is, its units, what 0 or "auto" means


FIELD_DOCS: dict[str, FieldDoc] = {
    # data
    "dataset": FieldDoc("data", "Dataset", "The images to learn from: shapes and shapes-subgrid "
                        "are synthetic (no download), digits comes with scikit-learn, mnist, "
                        "fashion-mnist and kmnist (28×28 grey), cifar10, cifar100 and stl10 "
                        "are read from data_root or downloaded once, imagefolder reads "
                        "data_root."),
    "data_root": FieldDoc("data", "Data folder", "Where downloaded datasets are kept, or the "
                          "class-per-folder images of imagefolder. mnist, fashion-mnist and "
                          "kmnist read the four IDX files (train-images-idx3-ubyte, "
                          "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                          "t10k-labels-idx1-ubyte, or their .gz) from data_root/MNIST/raw, "
                          "data_root/FashionMNIST/raw or data_root/KMNIST/raw (torchvision's "
                          "layout), or from data_root itself (as Debian's packages install "
                          "them, e.g. /usr/share/datasets/fashion-mnist); otherwise turn on "
                          "Download (download=true)."),
    "download": FieldDoc("data", "Download", "Download mnist, fashion-mnist, kmnist, cifar10, "
                         "cifar100 or stl10 into data_root when they are not there yet (needs "
                         "internet)."),
    "image_size": FieldDoc("data", "Image size", "Side length in pixels the images are resized "
                           "to; 0 keeps the dataset's native size."),
    "train_limit": FieldDoc("data", "Training images", "Train on at most this many images, the "
                            "same number of each class; 0 uses every training image."),
    "test_limit": FieldDoc("data", "Test images", "Evaluate on at most this many test images, "
                           "the same number of each class; 0 uses all of them."),
    "augment": FieldDoc("data", "Augmentation", "How the two views of an image are made: auto "
                        "is the dataset's own recipe; graph draws them from the exact "
                        "augmentation graph of a shapes grid."),
    "crop_p": FieldDoc("data", "Graph views: crop", "augment=graph only: probability that a "
                       "view redraws the shape's position and scale (a random crop)."),
    "rotate_p": FieldDoc("data", "Graph views: rotation", "augment=graph only: probability that "
                         "a view redraws the shape's rotation."),
    "color_p": FieldDoc("data", "Graph views: colour", "augment=graph only: probability that a "
                        "view redraws the foreground and background colours."),
    "class_change_p": FieldDoc("data", "Graph views: class change", "augment=graph only: where "
                               "a view is ambiguous (small shapes) a ring, cross or star is "
                               "drawn as circle, square or triangle with this probability times "
                               "its ambiguity; 0 keeps the classes disconnected, at most 0.9."),
    # model
    "backbone": FieldDoc("model", "Backbone", "The network whose features are probed: cnn-small, "
                         "cnn-narrow (a third of its step time) and cnn-wide (1,024 features, "
                         "about 2.3 times its step time) train in minutes on a CPU; the ResNets "
                         "are the paper's."),
    "projector_hidden_dim": FieldDoc("model", "Projector width", "Width of the projector's "
                                     "hidden layers (the MLP between backbone and loss)."),
    "projector_out_dim": FieldDoc("model", "Feature dimension d", "Size of the projector's "
                                  "output z, the d columns of f that the loss trains; the "
                                  "spectrum has d eigenvalues."),
    "projector_layers": FieldDoc("model", "Projector layers", "Linear layers of the projector "
                                 "(at least 2)."),
    "predictor_hidden_dim": FieldDoc("model", "Predictor width", "Hidden width of SimSiam's "
                                     "predictor; unused by the other losses."),
    "init_in_ball": FieldDoc("model", "Start inside the ball", "Spectral loss: scale the "
                             "projector's last layer so that E‖z‖² starts at μ/2, inside the "
                             "ball; otherwise every row starts clipped and training stalls."),
    # loss
    "loss": FieldDoc("loss", "Loss", "spectral: HaoChen et al.'s spectral contrastive loss; "
                     "simclr and simsiam: the baselines the paper compares with."),
    "mu": FieldDoc("loss", "μ (ball radius²)", "The ball's squared radius and the loss's scale "
                   "(loss × μ is the population loss with f = clip(z)); too small a μ cuts the "
                   "optimum off: its largest ‖f*(x)‖² is at least the number of classes, more "
                   "with the nuisance eigenvectors inside the top k (33 on the shapes demo "
                   "graph; the Spectrum page shows it for each shapes run)."),
    "temperature": FieldDoc("loss", "Temperature", "SimCLR's softmax temperature; unused by the "
                            "other losses."),
    # optimisation
    "epochs": FieldDoc("optimisation", "Epochs", "Passes over the training images; the cosine "
                       "schedule ends at the last one."),
    "batch_size": FieldDoc("optimisation", "Batch size", "Image pairs per step (the global "
                           "batch); each pair's negatives are the batch's other images."),
    "lr": FieldDoc("optimisation", "Learning rate", "Base learning rate of SGD, scaled by "
                   "batch_size/256 (the paper's rule); the peak after warm-up."),
    "momentum": FieldDoc("optimisation", "Momentum", "SGD momentum, in [0, 1)."),
    "weight_decay": FieldDoc("optimisation", "Weight decay", "L2 penalty on every parameter "
                             "(the paper's 5e-4 on CIFAR)."),
    "warmup_epochs": FieldDoc("optimisation", "Warm-up epochs", "Epochs of linear learning-rate "
                              "warm-up before the cosine decay; keep it below epochs."),
    # run
    "seed": FieldDoc("run", "Seed", "Seeds the initial weights, the batch order and the "
                     "augmentations: the same seed replays the same run."),
    "device": FieldDoc("run", "Device", "Where to train: auto takes a GPU (cuda, mps) when "
                       "there is one, else the CPU."),
    "amp": FieldDoc("run", "Mixed precision", "bf16 autocast on CUDA (faster, same results "
                    "within noise); ignored elsewhere."),
    "compile": FieldDoc("run", "torch.compile", "Compile the model for the training step: "
                        "slower start, faster steps on a GPU."),
    "sync_bn": FieldDoc("run", "Synchronised BatchNorm", "Under torchrun: BatchNorm statistics "
                        "over the whole global batch (CUDA only)."),
    "log_every": FieldDoc("run", "Steps per metrics line", "Steps between metrics lines (the "
                          "training curves' resolution)."),
    "checkpoint_every": FieldDoc("run", "Epochs per checkpoint", "Epochs between kept model "
                                 "checkpoints (each one is analysed); the last is always kept."),
    # evaluation and analysis
    "knn_every": FieldDoc("evaluation and analysis", "Epochs per kNN check", "Epochs between the "
                          "cheap kNN accuracy checks during training; 0 turns them off."),
    "knn_k": FieldDoc("evaluation and analysis", "kNN neighbours", "Neighbours that vote in the "
                      "kNN classifier (200 in Wu et al. 2018)."),
    "knn_temperature": FieldDoc("evaluation and analysis", "kNN temperature", "Temperature of "
                                "the kNN vote's weights exp(similarity / T)."),
    "probe": FieldDoc("evaluation and analysis", "Linear probe", "fast: a linear classifier on "
                      "fixed features; paper: the paper's augmented SGD protocol; auto: paper on "
                      "a GPU, fast elsewhere."),
    "probe_epochs": FieldDoc("evaluation and analysis", "Probe epochs", "Epochs of the paper's "
                             "linear probe (probe=paper)."),
    "analyze": FieldDoc("evaluation and analysis", "Analyse checkpoints", "Spectra, probes and "
                        "2-D layouts of every checkpoint: end (after training), background "
                        "(while training), off; auto: background on a GPU, else end."),
    "analysis_samples": FieldDoc("evaluation and analysis", "Analysis images", "Images of each "
                                 "split in the fixed sample every checkpoint is analysed on."),
    "analysis_projection": FieldDoc("evaluation and analysis", "2-D layouts", "Layouts of the "
                                    "embeddings to compute per checkpoint: pca (fast), umap "
                                    "(slower) or both."),
}


def label(name: str) -> str:
    """A field's label in the form: its title, and its config key (what ``key=value`` on the
    command line and the presets call it) when the title does not already say it."""
    title = FIELD_DOCS[name].title
    return title if title.lower() == name.replace("_", " ") else f"{title} ({name})"


def fields_of(group: str) -> list[str]:
    """The fields of ``group`` in the order :data:`FIELD_DOCS` lists them."""
    return [name for name, doc in FIELD_DOCS.items() if doc.group == group]
