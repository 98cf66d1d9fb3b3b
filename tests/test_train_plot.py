import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from dlcourse.plot import PALETTE, plot_curves, subplots_grid, use_style
from dlcourse.train import accuracy, evaluate, fit, make_loader


def _blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(2, (n,), generator=g)
    X = torch.randn(n, 2, generator=g) + 3 * y[:, None].float()
    return X, y


def test_fit_learns_a_separable_problem_and_records_history():
    torch.manual_seed(0)
    X, y = _blobs()
    g = torch.Generator().manual_seed(0)
    train, val = make_loader(X, y, 32, generator=g), make_loader(X, y, 64, shuffle=False)
    model = nn.Linear(2, 2)
    history = fit(model, train, optimizer=torch.optim.SGD(model.parameters(), lr=0.5), num_epochs=5,
                  val_loader=val, progress=False)
    assert len(history["train_loss"]) == 5 and len(history["step_loss"]) == 5 * len(train)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_acc"][-1] > 0.95
    assert evaluate(model, val, nn.functional.cross_entropy)["acc"] == pytest.approx(history["val_acc"][-1])


def test_fit_is_deterministic_under_a_seed():
    def run():
        torch.manual_seed(1)
        X, y = _blobs()
        model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
        loader = make_loader(X, y, 16, generator=torch.Generator().manual_seed(1))
        return fit(model, loader, optimizer=torch.optim.Adam(model.parameters()), num_epochs=2,
                   progress=False)["step_loss"]
    assert run() == run()


def test_fit_rejects_bad_arguments():
    model = nn.Linear(2, 2)
    X, y = _blobs(8)
    with pytest.raises(ValueError, match="num_epochs must be a positive int"):
        fit(model, make_loader(X, y, 4), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), num_epochs=0)
    with pytest.raises(ValueError, match="training iterable is empty"):
        fit(model, [], optimizer=torch.optim.SGD(model.parameters(), lr=0.1), num_epochs=1, progress=False)


def test_make_loader_and_accuracy_validate_shapes():
    with pytest.raises(ValueError, match="same length"):
        make_loader(torch.zeros(3, 2), torch.zeros(4), 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        make_loader(torch.zeros(3, 2), torch.zeros(3), 0)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        accuracy(torch.zeros(3), torch.zeros(3))
    assert accuracy(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1])) == 0.5


def test_plot_helpers_label_axes_and_validate():
    use_style()
    fig = plot_curves({"a": [3, 2, 1], "b": [2, 2, 2]}, xlabel="epoch", ylabel="loss", title="t", logy=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == "log" and ax.get_legend() is not None
    assert ax.lines[0].get_color().lower() == PALETTE[0].lower()
    plt.close(fig)
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_curves({}, xlabel="x", ylabel="y", title="t")
    with pytest.raises(ValueError, match="curve 'a' is empty"):
        plot_curves({"a": []}, xlabel="x", ylabel="y", title="t")
    fig, axes = subplots_grid(5, 3)
    assert len(axes) == 5 and sum(a.get_visible() for a in fig.axes) == 5
    plt.close(fig)
    with pytest.raises(ValueError, match="positive int"):
        subplots_grid(0)
