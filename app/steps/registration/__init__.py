"""Registration step: run, inspect (checkerboard, blink, fused), accept or reject."""
