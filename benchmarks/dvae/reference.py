"""
A PyTorch twin of benchmarks/dvae/train.ts for the small32 dVAE: the same layout, init, objective (logit-Laplace,
soft Gumbel-softmax, KL to uniform, all over H·W·3) and cosine schedules, for checking that a training recipe behaves
the same in both and for searching recipes faster (torch's CPU convs are about 2× ours on this model today).

    node --import tsx lib/cli/main.ts data shapes --out /tmp/shp-train --count 6400 --size 32 \
        --capabilities single,counting,relations --seed 1000
    node --import tsx lib/cli/main.ts data shapes --out /tmp/shp-test --count 200 --size 32 \
        --capabilities single,counting,relations --seed 77 --split test
    NT=2 /usr/bin/python3 benchmarks/dvae/reference.py STEPS LR BETA [K] [LNB_FLOOR]

It prints the loss every 100 steps, then held-out PSNR and code usage of argmax reconstructions, and writes a grid
of originals over reconstructions to /tmp/torch_rec_<args>.png. Needs PyTorch and Pillow (Debian: python3-torch,
python3-pil). Diagnostics printed at the end: PSNR when decoding a τ = 1/16 Gumbel sample (the training path) and
the noise-free softmax, and the posterior entropy over object and background cells.

Experiments, none of them the paper's recipe: LNB_FLOOR clamps ln b from below; env FIXB=v fixes ln b (an L1 loss
in logit space); TAU_FRAC=f anneals τ over that fraction of the run (default all of it), TAU_STEPS=n over n steps, BETA_STEPS=n
warms β up over n steps (default a tenth of the run), from BETA_FROM (default 0); CROP=c trains on c×c windows around a random object pixel,
BATCH=b sets the batch (default 32); LOGIT_GAIN=g scales the encoder's output conv at init; MODE=ae decodes the
noise-free softmax, MODE=cae the raw logits (a continuous autoencoder); LOSS=mse replaces the NLL (MSE_STEPS=n for the first n steps only; MSE_W its weight, default 100); CEIL=c clamps ln b from above; NH sets n_hid (default 32);
SAVE_REC=dir writes each held-out reconstruction there (score them with benchmarks/dvae/agreement.ts).
"""
import glob, math, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
torch.manual_seed(0); torch.set_flush_denormal(True); torch.set_num_threads(int(os.environ.get("NT", "2")))
def load(d):
    fs = sorted(glob.glob(d + '/*.png'))
    return torch.tensor(np.stack([np.array(Image.open(f).convert('RGB')) for f in fs])).permute(0, 3, 1, 2).float() / 255
train, test = load(os.environ.get('TRAIN', '/tmp/shp-train')), load(os.environ.get('TEST', '/tmp/shp-test'))
EPS = 0.1
mapx = lambda x: (1 - 2 * EPS) * x + EPS
class Conv(nn.Module):
    def __init__(s, a, b, k):
        super().__init__(); s.w = nn.Parameter(torch.randn(b, a, k, k) / math.sqrt(a * k * k)); s.b = nn.Parameter(torch.zeros(b)); s.k = k
    def forward(s, x): return F.conv2d(x, s.w, s.b, padding=(s.k - 1) // 2)
class Block(nn.Module):
    def __init__(s, a, b, ks, L):
        super().__init__(); h = b // 4; ws = [a, h, h, h, b]
        s.id = Conv(a, b, 1) if a != b else None; s.res = nn.ModuleList([Conv(ws[i], ws[i + 1], ks[i]) for i in range(4)]); s.g = 1 / L ** 2
    def forward(s, x):
        r = x
        for c in s.res: r = c(F.relu(r))
        return (s.id(x) if s.id else x) + s.g * r
G, NH, NI = 2, int(os.environ.get('NH', '32')), 64
K = int(sys.argv[4]) if len(sys.argv) > 4 else 512
FLOOR = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != '-' else None
FIXB = float(os.environ['FIXB']) if 'FIXB' in os.environ else None
TAU_FRAC = float(os.environ.get('TAU_FRAC', '1'))
MODE = os.environ.get('MODE')
enc = nn.ModuleList([Conv(3, NH, 7), Block(NH, NH, [3, 3, 3, 1], G), Block(NH, 2 * NH, [3, 3, 3, 1], G), Conv(2 * NH, K, 1)])
dec = nn.ModuleList([Conv(K, NI, 1), Block(NI, 2 * NH, [1, 3, 3, 3], G), Block(2 * NH, NH, [1, 3, 3, 3], G), Conv(NH, 6, 1)])
def encode(x):
    h = enc[0](x); h = enc[1](h); h = F.max_pool2d(h, 2); h = enc[2](h); return enc[3](F.relu(h))
def decode(y):
    h = dec[0](y); h = dec[1](h); h = F.interpolate(h, scale_factor=2, mode='nearest'); h = dec[2](h); return dec[3](F.relu(h))
cos = lambda a, b, n, t: b + (a - b) * (1 + math.cos(math.pi * min(t, n) / n)) / 2
STEPS, LR, BETA = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
CROP = int(os.environ.get('CROP', '0')); BATCH = int(os.environ.get('BATCH', '32'))
def object_crop(im):
    # A CROP×CROP window around a random object pixel (any non-white pixel), on even coordinates.
    ys, xs = torch.nonzero((im < mapx(torch.tensor(0.99))).any(0), as_tuple=True)
    i = torch.randint(0, len(ys), ()) if len(ys) else None
    cy, cx = (int(ys[i]), int(xs[i])) if i is not None else (16, 16)
    y0 = min(max(cy - CROP // 2, 0), im.shape[1] - CROP) // 2 * 2; x0 = min(max(cx - CROP // 2, 0), im.shape[2] - CROP) // 2 * 2
    return im[:, y0:y0 + CROP, x0:x0 + CROP]
BETA_STEPS = int(os.environ.get('BETA_STEPS', STEPS // 10)); TAU_STEPS = int(os.environ.get('TAU_STEPS', STEPS * TAU_FRAC))
with torch.no_grad():
    enc[3].w.mul_(float(os.environ.get('LOGIT_GAIN', '1')))
    print('initial logit std', encode(mapx(train[:64])).std().item(), flush=True)
params = list(enc.parameters()) + list(dec.parameters())
opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
t0 = time.time()
for step in range(STEPS):
    for g in opt.param_groups: g['lr'] = cos(LR, LR / 80, STEPS, step)
    beta = cos(float(os.environ.get('BETA_FROM', '0')), BETA, BETA_STEPS, step); tau = cos(1, 1 / 16, TAU_STEPS, step)
    idx = torch.randint(0, len(train), (BATCH,)); x = mapx(train[idx])
    if CROP: x = torch.stack([object_crop(im) for im in x])
    l = encode(x)
    y = l if MODE == 'cae' else F.softmax(l, 1) if MODE == 'ae' else F.gumbel_softmax(l, tau=tau, hard=False, dim=1)
    out = decode(y); mu, lnb = out[:, :3], out[:, 3:]
    if FLOOR is not None: lnb = lnb.clamp(min=FLOOR)
    if 'CEIL' in os.environ: lnb = lnb.clamp(max=float(os.environ['CEIL']))
    if FIXB is not None: lnb = torch.full_like(lnb, FIXB)
    nll = ((torch.logit(x) - mu).abs() * torch.exp(-lnb) + lnb + math.log(2) + torch.log(x * (1 - x))).sum()
    if os.environ.get('LOSS') == 'mse' or step < int(os.environ.get('MSE_STEPS', '0')):
        nll = float(os.environ.get('MSE_W', '100')) * ((torch.sigmoid(mu) - x) ** 2).sum()
    logp = F.log_softmax(l, dim=1); kl = (logp.exp() * (logp + math.log(K))).sum()
    loss = (nll + beta * kl) / x.numel()
    opt.zero_grad(); loss.backward(); opt.step()
    if (step + 1) % 100 == 0: print(step + 1, round(loss.item(), 4), round(nll.item() / x.numel(), 4), round(kl.item() / x.numel(), 4), f'{time.time() - t0:.0f}s', flush=True)
with torch.no_grad():
    x = mapx(test); codes = encode(x).argmax(1); y = F.one_hot(codes, K).permute(0, 3, 1, 2).float()
    if MODE: y = encode(x) if MODE == 'cae' else F.softmax(encode(x), 1)  # the path these modes trained
    rec = ((torch.sigmoid(decode(y)[:, :3]) - EPS) / (1 - 2 * EPS)).clamp(0, 1)
    mse = ((torch.round(rec * 255) - torch.round(test * 255)) ** 2).mean()
    pixels = lambda y: ((torch.sigmoid(decode(y)[:, :3]) - EPS) / (1 - 2 * EPS)).clamp(0, 1)
    psnr = lambda r: (10 * torch.log10(255 ** 2 / ((torch.round(r * 255) - torch.round(test * 255)) ** 2).mean())).item()
    print('sample-decode PSNR', psnr(pixels(F.gumbel_softmax(encode(x), tau=1 / 16, dim=1))))
    lp = F.log_softmax(encode(x), 1); ent = -(lp.exp() * lp).sum(1)  # [B, g, g]
    obj = (F.max_pool2d((test < 0.99).any(1, keepdim=True).float(), 2)[:, 0] > 0)
    print('entropy nats: object cells', ent[obj].mean().item(), 'background cells', ent[~obj].mean().item(), 'of', math.log(K))
    print('soft-decode PSNR', psnr(pixels(encode(x) if MODE == 'cae' else F.softmax(encode(x), 1))))
    h = torch.bincount(codes.flatten(), minlength=K).float(); p = h[h > 0] / h.sum()
    print('PSNR', (10 * torch.log10(255 ** 2 / mse)).item(), 'perplexity', torch.exp(-(p * p.log()).sum()).item(), 'used', int((h > 0).sum()))
    if 'SAVE_REC' in os.environ:  # one PNG per held-out scene, named like the originals, for the shapes detector
        os.makedirs(os.environ['SAVE_REC'], exist_ok=True)
        for f, r in zip(sorted(glob.glob(os.environ.get('TEST', '/tmp/shp-test') + '/*.png')), rec):
            Image.fromarray((r.permute(1, 2, 0) * 255).round().byte().numpy()).save(os.path.join(os.environ['SAVE_REC'], os.path.basename(f)))
    Image.fromarray((torch.cat([test[:16], rec[:16]], 2).permute(2, 0, 3, 1).reshape(64, 16 * 32, 3) * 255).byte().numpy()).save('/tmp/torch_rec_%s.png' % '_'.join(sys.argv[1:] + [k + v for k, v in os.environ.items() if k in ('FIXB', 'TAU_FRAC', 'MODE', 'LOSS', 'BETA_STEPS', 'TAU_STEPS', 'CROP', 'BATCH', 'LOGIT_GAIN', 'CEIL', 'BETA_FROM', 'NH', 'MSE_STEPS', 'MSE_W')]))
