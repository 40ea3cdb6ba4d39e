// The HS256 secret the benchmarks' plugin servers verify tokens with (and their clients sign with).
export const BENCH_SECRET = 'bench-secret-0123456789abcdef0123456789';
