"""PyTorch anchor for bench:train: the same 784-1000-500-250-32 ELU autoencoder, batch 256, Adam, BCE, 2 threads."""
import sys, time, torch
torch.set_num_threads(2)
torch.manual_seed(0)
dims = [784, 1000, 500, 250, 32]
enc, dec = [], []
for a, b in zip(dims, dims[1:]):
    enc += [torch.nn.Linear(a, b), torch.nn.ELU()]
enc = enc[:-1]
r = dims[::-1]
for a, b in zip(r, r[1:]):
    dec += [torch.nn.Linear(a, b), torch.nn.ELU()]
dec = dec[:-1]
net = torch.nn.Sequential(*enc, *dec)
opt = torch.optim.Adam(net.parameters(), 1e-3)
x = torch.rand(8192, 784)
loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
def step(i):
    xb = x[(i * 256) % 8192:(i * 256) % 8192 + 256]
    opt.zero_grad()
    loss = loss_fn(net(xb), xb) / 256
    loss.backward()
    opt.step()
for i in range(5):
    step(i)
t = time.perf_counter()
for i in range(steps):
    step(i)
print(f"{steps * 256 / (time.perf_counter() - t):.1f}")
