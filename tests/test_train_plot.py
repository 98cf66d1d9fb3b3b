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


def test_random_batches_draw_with_replacement_like_randint():
    from dlcourse.train import RandomBatches

    X, y = torch.arange(10.0)[:, None], torch.arange(10)
    batches = list(RandomBatches(X, y, batch_size=4, num_batches=3, generator=torch.Generator().manual_seed(0)))
    g = torch.Generator().manual_seed(0)
    for bx, by in batches:
        idx = torch.randint(10, (4,), generator=g)
        assert torch.equal(by, idx) and torch.equal(bx[:, 0], idx.float())
    assert len(RandomBatches(X, y, batch_size=4, num_batches=3)) == 3
    with pytest.raises(ValueError, match="num_batches must be an int >= 0"):
        RandomBatches(X, y, batch_size=4, num_batches=-1)
    with pytest.raises(ValueError, match="same, non-zero length"):
        RandomBatches(X, y[:5], batch_size=4, num_batches=1)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        RandomBatches(X, y, batch_size=0, num_batches=1)


def test_tensor_batches_follow_randperm_split():
    from dlcourse.train import TensorBatches

    X = torch.arange(10)
    batches = [b for (b,) in TensorBatches(X, batch_size=4, generator=torch.Generator().manual_seed(0))]
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(0)).split(4)
    assert [b.tolist() for b in batches] == [e.tolist() for e in expected]


def test_fit_logs_the_rate_each_step_used_and_calls_its_hooks():
    from dlcourse.train import TensorBatches

    torch.manual_seed(0)
    X, y = _blobs(40)
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    calls = []
    history = fit(model, TensorBatches(X, y, batch_size=20), optimizer=optimizer, num_epochs=2,
                  scheduler=scheduler, progress=False,
                  on_epoch_start=lambda epoch, opt: calls.append(("start", epoch)),
                  on_step=lambda step, h: calls.append(("step", step)),
                  on_epoch_end=lambda epoch, h: h.log(extra=epoch))
    assert history["step_lr"] == [1.0, 0.5, 0.25, 0.125]  # before scheduler.step()
    assert calls == [("start", 0), ("step", 1), ("step", 2), ("start", 1), ("step", 3), ("step", 4)]
    assert history["extra"] == [0.0, 1.0]


def test_fit_stops_on_divergence():
    X, y = _blobs(40)
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    history = fit(model, make_loader(X, y, 10), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  num_epochs=3, stop_on_divergence=True, progress=False)
    assert history.diverged and len(history["step_loss"]) == 1 and len(history["train_loss"]) == 1


def test_plot_learning_curves_needs_the_history_keys():
    from dlcourse.plot import plot_learning_curves

    history = {"step_loss": [2.0, 1.0, 0.5, 0.4], "step_lr": [0.1] * 4, "val_loss": [1.2, 0.6],
               "val_acc": [0.5, 0.8], "train_eval_acc": [0.6, 0.9]}
    fig = plot_learning_curves(history, title="run")
    assert [ax.get_title() for ax in fig.axes][:2] == ["run: loss", "run: accuracy"]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["training", "validation"]
    plt.close(fig)
    with pytest.raises(ValueError, match="missing or empty: val_loss"):
        plot_learning_curves({**history, "val_loss": []})


def test_plot_curves_takes_colours_and_legend_options():
    fig = plot_curves({"a": [1, 2], "b": [2, 1]}, xlabel="x", ylabel="y", title="t", colors=["red", "blue"],
                      legend={"loc": "lower right"}, lw=3)
    lines = fig.axes[0].get_lines()
    assert [line.get_color() for line in lines] == ["red", "blue"] and lines[0].get_linewidth() == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="colors names 1 colours for 2 curves"):
        plot_curves({"a": [1], "b": [2]}, xlabel="x", ylabel="y", title="t", colors=["red"])
