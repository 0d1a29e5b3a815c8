/** Any JSON value: what a schema leaves open (`{}`, `true`, open objects) is typed as this, never `any`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
