// Lists the newest products through the API on the same origin (CloudFront routes /products* to the
// gateway), so no CORS and no configuration: the page works on any stack's edge URL.
"use strict";

const LIMIT = 20;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text; // textContent, never innerHTML: product names are user input
  return td;
}

async function load() {
  const status = document.getElementById("status");
  const table = document.getElementById("products");
  try {
    const response = await fetch(`/products?limit=${LIMIT}`, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      throw new Error(`the API answered ${response.status}`);
    }
    const products = await response.json();
    const body = table.querySelector("tbody");
    body.replaceChildren(...products.map((p) => {
      const row = document.createElement("tr");
      row.append(cell(p.name), cell(p.price), cell(new Date(p.createdAt).toLocaleString()));
      return row;
    }));
    status.textContent = products.length ? `${products.length} newest products` : "No products yet.";
    table.hidden = products.length === 0;
  } catch (error) {
    status.textContent = `Could not load products: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", load);
