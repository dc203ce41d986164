// A node of a graph is named by its index in the graph's node list (a leaf module: the op table's
// types and the graph both use it).

export type NodeId = number;
