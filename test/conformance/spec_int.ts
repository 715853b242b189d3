// Spec cases for integers and bool: i32, u32 and u8 wrap modulo 2^32 (2^8) as two's complement;
// integer division truncates toward zero and x / 0 = x; remainder takes the dividend's sign and
// x % 0 = 0 (both as WGSL defines them); shift amounts are taken modulo 32; shr is arithmetic on
// i32 and logical on u32; bool arithmetic is logical (add = or, mul = and, sub = xor).

import type { SpecCase } from "./spec_case.js";
import { bin, un } from "./spec_case.js";

const MIN = -2147483648, MAX = 2147483647, UMAX = 4294967295;

export const INT_CASES: readonly SpecCase[] = [
  // i32
  bin("add", "i32", "wraps at the ends", [MAX, MIN, 100, -5], [1, -1, 23, 5], [MIN, MAX, 123, 0]),
  bin("sub", "i32", "wraps at the ends", [MIN, MAX, 3], [1, -1, 5], [MAX, MIN, -2]),
  bin("mul", "i32", "keeps the low 32 bits", [65536, 46341, MIN, 123456789, -7], [65536, 46341, -1, 1000, 6],
    [0, -2147479015, MIN, -1097262584, -42]),
  un("neg", "i32", "-MIN is MIN", [MIN, 5, 0, -7], [MIN, -5, 0, 7]),
  un("abs", "i32", "abs(MIN) is MIN", [MIN, -5, 7], [MIN, 5, 7]),
  bin("div", "i32", "truncates toward zero, x / 0 = x, MIN / -1 = MIN",
    [7, -7, 7, -7, 1, -1, 5, -5, 0, MIN, MAX], [2, 2, -2, -2, 3, 3, 0, 0, 0, -1, -1],
    [3, -3, -3, 3, 0, 0, 5, -5, 0, MIN, -MAX]),
  bin("mod", "i32", "takes the dividend's sign, x % 0 = 0, MIN % -1 = 0",
    [7, -7, 7, -7, 5, -5, MIN, 6], [3, 3, -3, -3, 0, 0, -1, 3], [1, -1, 1, -1, 0, 0, 0, 0]),
  bin("max", "i32", "signed order", [-5, MAX, MIN], [3, -1, 0], [3, MAX, 0]),
  bin("min", "i32", "signed order", [-5, MAX, MIN], [3, -1, 0], [-5, -1, MIN]),
  bin("cmplt", "i32", "signed order", [-1, 5, MIN, 3], [0, 5, MAX, 2], [1, 0, 1, 0]),
  bin("cmpeq", "i32", "equality", [-1, 5, MIN, 3], [0, 5, MAX, 2], [0, 1, 0, 0]),
  bin("cmpne", "i32", "inequality", [-1, 5, MIN, 3], [0, 5, MAX, 2], [1, 0, 1, 1]),
  un("not", "i32", "bitwise complement", [0, 5, -1, MAX], [-1, -6, 0, MIN]),
  bin("and", "i32", "bitwise", [12, -1, -8], [10, 255, 7], [8, 255, 0]),
  bin("or", "i32", "bitwise", [12, -1, -8], [10, 255, 7], [14, -1, -1]),
  bin("xor", "i32", "bitwise", [12, -1, -8], [10, 255, 7], [6, -256, -1]),
  bin("shl", "i32", "drops high bits, amount modulo 32", [1, 1, 3, -1, 5], [31, 32, 30, 4, 33], [MIN, 1, -1073741824, -16, 10]),
  bin("shr", "i32", "arithmetic, amount modulo 32", [-8, -1, 8, MIN, -8], [1, 31, 2, 31, 33], [-4, -1, 2, -1, -4]),
  un("floor", "i32", "is the identity", [MIN, -3, 7], [MIN, -3, 7]),

  // u32
  bin("add", "u32", "wraps past UMAX", [UMAX, UMAX, 7], [1, UMAX, 8], [0, UMAX - 1, 15]),
  bin("sub", "u32", "wraps below 0", [0, 5, 10], [1, 7, 3], [UMAX, UMAX - 1, 7]),
  bin("mul", "u32", "keeps the low 32 bits", [65536, UMAX, 3000000000, 12], [65537, UMAX, 2, 11], [65536, 1, 1705032704, 132]),
  un("neg", "u32", "is 2^32 - x", [5, 0, UMAX], [4294967291, 0, 1]),
  bin("div", "u32", "unsigned, x / 0 = x", [7, UMAX, 5, UMAX], [2, 2, 0, UMAX], [3, 2147483647, 5, 1]),
  bin("mod", "u32", "unsigned, x % 0 = 0", [7, UMAX, 5], [3, 10, 0], [1, 5, 0]),
  bin("max", "u32", "unsigned order", [UMAX, 0, 7], [0, 1, 7], [UMAX, 1, 7]),
  bin("min", "u32", "unsigned order", [UMAX, 0, 7], [0, 1, 7], [0, 0, 7]),
  bin("cmplt", "u32", "unsigned order", [UMAX, 0, 2147483648], [0, UMAX, 2147483647], [0, 1, 0]),
  un("not", "u32", "bitwise complement", [0, 5], [UMAX, 4294967290]),
  bin("shl", "u32", "drops high bits, amount modulo 32", [3, 1], [31, 32], [2147483648, 1]),
  bin("shr", "u32", "logical", [4294967288, 2147483648], [1, 31], [2147483644, 1]),
  un("abs", "u32", "is the identity", [UMAX, 3], [UMAX, 3]),

  // u8
  bin("add", "u8", "wraps past 255", [250, 255], [10, 1], [4, 0]),
  bin("sub", "u8", "wraps below 0", [3, 0], [5, 1], [254, 255]),
  bin("mul", "u8", "keeps the low 8 bits", [16, 255], [17, 255], [16, 1]),
  un("neg", "u8", "is 256 - x", [1, 0, 128], [255, 0, 128]),
  bin("div", "u8", "truncates, x / 0 = x", [200, 7], [3, 0], [66, 7]),
  bin("mod", "u8", "x % 0 = 0", [200, 7], [3, 0], [2, 0]),
  bin("max", "u8", "unsigned order", [200, 3], [100, 4], [200, 4]),
  un("not", "u8", "complement within 8 bits", [0, 5], [255, 250]),
  bin("shl", "u8", "drops bits past 8", [200, 1], [1, 7], [144, 128]),
  bin("shr", "u8", "logical", [200, 255], [3, 7], [25, 1]),

  // bool: the four combinations (0,0), (0,1), (1,0), (1,1)
  bin("add", "bool", "is or", [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1]),
  bin("sub", "bool", "is xor", [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0]),
  bin("mul", "bool", "is and", [0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]),
  bin("max", "bool", "is or", [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1]),
  bin("min", "bool", "is and", [0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]),
  bin("and", "bool", "logical", [0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]),
  bin("or", "bool", "logical", [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1]),
  bin("xor", "bool", "logical", [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0]),
  bin("cmplt", "bool", "false < true", [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 0, 0]),
  bin("cmpeq", "bool", "equality", [0, 0, 1, 1], [0, 1, 0, 1], [1, 0, 0, 1]),
  bin("cmpne", "bool", "inequality", [0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0]),
  un("not", "bool", "logical", [0, 1], [1, 0]),
];
