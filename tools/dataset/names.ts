/**
 * The name lists generated rows draw from: Argentine first and last names, some with
 * accents. The generator picks from them by index, so adding, removing or reordering a
 * name changes every generated file (the pinned hashes in `agency_csv_test.ts` say so).
 *
 * @module
 */

/** Reads a list written as names separated by commas; line breaks between them are ignored. */
function names(text: string): readonly string[] {
  return text.split(",").map((name) => name.trim());
}

/** Men's first names, with and without accents as people write them. */
export const MALE_NAMES: readonly string[] = names(`Santiago, Lionel, Agustín, Agustin, Emanuel,
  Tiago, Nicolás, Nicolas, Diego, Marcos, Nahuel, Joaquín, Joaquin, Sebastián, Sebastian,
  Ezequiel, Gabriel, Alejandro, Lautaro, Lucas, Juan, Daniel, Tomás, Tomas, Ignacio, Axel,
  Facundo, Benjamín, Benjamin, Thiago, Franco, Martín, Martin, Matías, Matias, David, Leonel,
  Ariel, Gonzalo, Kevin, José, Uriel, Rodrigo, Valentín, Luciano, Francisco, Javier, Mateo,
  Fernando, Pablo, Tobías, Alexis, Maximiliano, Cristian, Leandro, Luis, Alan, Andrés, Iván,
  Federico, Máximo, Dylan, Antonio, Manuel, Bautista, Elías, Carlos, Ramiro, Alejo, Jonathan,
  Joel, Bruno, Ángel, Miguel, Leonardo, Ismael, Enzo, Santino, Pedro, Jeremías, Thomas, Marco,
  Mariano`);

/** Women's first names, with and without accents as people write them. */
export const FEMALE_NAMES: readonly string[] = names(`María, Maria, Valentina, Milagros, Agustina,
  Abril, Abigail, Belén, Belen, Sofía, Sofia, Candela, Camila, Rocío, Rocio, Micaela, Aylén, Ana,
  Brisa, Magalí, Priscila, Ayelén, Ludmila, Guadalupe, Ailén, Florencia, Lucía, Victoria,
  Antonella, Julieta, Agostina, Lourdes, Jazmín, Kiara, Luz, Soledad, Morena, Martina, Pilar,
  Celeste, Iara, Luciana, Paula, Sol, Tatiana, Mía, Lara, Clara, Nicole, Brenda, Delfina,
  Josefina, Constanza, Bianca, Emilia, Candelaria, Eugenia, Maia, Luján, Magdalena, Laura,
  Rosario, Luna, Ariana`);

/** First names that are themselves compound, used now and then whole. */
export const COMPOUND_NAMES: readonly string[] = names(`María José, María Belén, María Victoria,
  María Luz, María De Los Ángeles, María Del Carmen, Juan Pablo, Juan Cruz, Juan Martín,
  José Luis, Juan Ignacio, Ana Laura`);

/** Last names; a few have two words. */
export const LAST_NAMES: readonly string[] = names(`Lorca, Zambrano, Fernández, Rivera, Varela,
  Mamani, Rotman, Basile, Quispe, Arredondo, Abadía, Huarte, Salazar, Arellano, Martínez, Rivas,
  Gonzales, Sojero, Rosso, Pavón, Casares, Vargas, Álvarez, Totora, Pereira, Leiva, Mejía,
  Rotundo, Santana, Sosa, Rodríguez, Sberna, Portillo, Sánchez, Giménez, Sala, Marini, Marín,
  Fazzi, Raimundo, De Luca, López, Pedone, Castro, Huergo, Morales, Surace, Nave, Duarte, De León,
  Vasile, Demichelis, Giordano, Hoffmann, Ibáñez, Salem, Leal, Díaz, Mancuso, Hernández, León,
  Pineda, Godoy, Castillo, Goicochea, Mora, Ramírez, Jiménez, Sorbera, Borges, Rojas, Silva,
  Carrizo, Vera, Marino, Scanone, Lorenzo, Nessi, Marchi, Schapira, Santos, Espinoza, Pereyra,
  Fava, Muñoz, Flores, Farías, Galán, Valenzuela, Sotomayor, Gómez, Contreras, Farina, Soto,
  González, Gutiérrez, Villalba, Reyes, García, Saldaña, Hidalgo, Moreno, Andrade, Carranza,
  Agüero, Fornerón, Delgado, Pérez, Benítez, Amenedo, Pinedo, Rebollo, Mariani`);
