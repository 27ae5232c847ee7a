import type { FastifyInstance } from 'fastify';
import { decodeCursor, encodeCursor } from './cursor';
import { productNotFound } from './errors';
import { PRODUCT_ID_PATTERN } from './order';
import type { Product, ProductRepository } from './product.repository';

const moneySchema = {
  type: 'object',
  required: ['amount', 'currency'],
  properties: { amount: { type: 'integer' }, currency: { type: 'string' } },
} as const;

export const productSchema = {
  type: 'object',
  required: ['id', 'name', 'description', 'price', 'stock'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    description: { type: 'string' },
    price: moneySchema,
    stock: { type: 'integer' },
  },
} as const;

const pageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    cursor: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

const productIdPattern = new RegExp(PRODUCT_ID_PATTERN);

function productView(product: Product) {
  return {
    id: product.id,
    name: product.name,
    description: product.description,
    price: product.price,
    stock: product.stock,
  };
}

/** The public catalog: no authentication. */
export function registerProductRoutes(app: FastifyInstance, products: ProductRepository): void {
  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/products',
    {
      schema: {
        querystring: pageQuery,
        response: {
          200: {
            type: 'object',
            required: ['items', 'nextCursor'],
            properties: {
              items: { type: 'array', items: productSchema },
              nextCursor: { type: ['string', 'null'] },
            },
          },
        },
      },
    },
    async (request) => {
      const after = decodeCursor(request.query.cursor, productIdPattern);
      const { limit } = request.query;
      // One more than asked tells whether there is a next page without a count query.
      const page = await products.list(limit + 1, after);
      const items = page.slice(0, limit);
      const last = items.at(-1);
      return {
        items: items.map(productView),
        nextCursor: page.length > limit && last !== undefined ? encodeCursor(last.id) : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/products/:id',
    {
      schema: {
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: PRODUCT_ID_PATTERN } },
        },
        response: { 200: productSchema },
      },
    },
    async (request) => {
      const product = await products.find(request.params.id);
      if (product === undefined) throw productNotFound();
      return productView(product);
    },
  );
}
