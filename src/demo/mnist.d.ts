// The part of the mnist package (a devDependency, used only by train-mnist.ts) that is used here:
// per class 0–9, its samples, each 784 numbers from 0 to 1 (row-major 28×28).
declare module 'mnist' {
  interface MnistClass {
    readonly length: number;
    get(index: number): number[];
  }
  const mnist: readonly MnistClass[];
  export default mnist;
}
